"""The console: healthorch's admin site (dashboard, organization switcher) on Django's admin."""
