"""The prices in force: a price book per configuration, and per pricing plan over it.

A book is ``[pricing]`` with the configuration's overrides, and the SolusVM plan rates (the configured
ones over those the last sync cached); a plan's book is ``[plans.<plan>]``'s prices over its
configuration's. Built once by the composition root from those sections; the services that price
(invoicing, plans, the credit engine) read each book once per run, through :meth:`PriceBooks.for_run`.
"""

from __future__ import annotations

from collections.abc import Mapping

from bridge.domain.pricing import PlanRate, PriceBook
from bridge.domain.terms import DEFAULT_PLAN
from bridge.settings import PlanSettings, PricingSettings
from bridge.store import usage as usage_store
from bridge.store.unit_of_work import UnitOfWork


class PriceBooks:
    def __init__(
        self, uow: UnitOfWork, *, currency: str, pricing: PricingSettings, plans: Mapping[str, PlanSettings]
    ) -> None:
        self._uow = uow
        self._currency = currency
        self._pricing = pricing
        self._plans = plans

    def for_run(self) -> RunBooks:
        """The books of one run, each read at its first use and kept for the run."""
        return RunBooks(self)

    def of(self, configuration: str) -> PriceBook:
        """The book of a configuration: [pricing], its overrides and the SolusVM plan rates (read now)."""
        pricing = self._pricing
        override = pricing.overrides.get(configuration)
        flavors = {**pricing.flavors, **(override.flavors if override else {})}
        token_price = (
            override.token_price if override and override.token_price is not None else pricing.token_price
        )
        with self._uow.reading() as connection:
            cached = usage_store.plan_rates(connection)
        plans = {
            plan_id: PlanRate(rate.tokens_per_hour, rate.tokens_per_month or None)
            for plan_id, rate in cached.items()
        }
        for plan_id, configured in pricing.solusvm_plans.items():
            plans[plan_id] = PlanRate(configured.tokens_per_hour, configured.tokens_per_month or None)
        return PriceBook(self._currency, flavors, token_price, plans)

    def of_plan(self, base: PriceBook, plan: str) -> PriceBook:
        """``[plans.<plan>]``'s prices over ``base``; ValueError naming the fix when it is not defined."""
        settings = self._plans.get(plan)
        if settings is None:
            raise ValueError(
                f"pricing plan {plan!r} is not in the settings; add [plans.{plan}] back or assign the client "
                "another plan with `billing-bridge plan assign`"
            )
        token_price = settings.token_price if settings.token_price is not None else base.token_price
        return PriceBook(base.currency, {**base.flavor_prices, **settings.flavors}, token_price, base.plans)


class RunBooks:
    """The books of one run: a run prices every client of one configuration and plan with the same book,
    and the next run reads them again (the SolusVM plan rates change with each sync). Not shared between
    threads: each run makes its own."""

    def __init__(self, books: PriceBooks) -> None:
        self._books = books
        self._kept: dict[tuple[str, str], PriceBook] = {}

    def book(self, configuration: str, plan: str = DEFAULT_PLAN) -> PriceBook:
        """The configuration's book; with a ``plan``, that plan's prices over it (ValueError if undefined)."""
        key = (configuration, plan)
        if key not in self._kept:
            if plan == DEFAULT_PLAN:
                self._kept[key] = self._books.of(configuration)
            else:
                self._kept[key] = self._books.of_plan(self.book(configuration), plan)
        return self._kept[key]
