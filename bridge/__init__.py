"""billing-bridge: usage billing between OpenStack / SolusVM 2 and WHMCS."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("billing-bridge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
