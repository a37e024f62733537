"""The store: SQLAlchemy Core tables (``tables``), exact column types (``types``), the Alembic migrations, the
engine and schema checks (``database``), and one repository module per aggregate (clients, credit, invoices,
outbox, plans, usage, jobs, enrollment, whmcs links) that reads and writes rows as domain values.

SQLite, MariaDB and PostgreSQL are all first-class; nothing outside this package writes SQL.
"""
