"""Models for the monitors domain arrive with its issue; the app is installed so migrations and
admin registration have a home from day one."""
