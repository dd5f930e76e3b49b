"""The tenancy gate: every organization-scoped API endpoint (`api`) and console page (`admin`)
passes here, so one organization never reaches another's rows."""
