from __future__ import annotations

from rest_framework import serializers

from apps.plans.models import Limit, Plan


class PlanOutput(serializers.ModelSerializer):
    limits = serializers.SerializerMethodField()
    sla = serializers.SerializerMethodField()

    class Meta:
        model = Plan
        fields = ["code", "name", "monthly_price_cents", "currency", "features", "limits", "sla"]

    def get_limits(self, plan: Plan) -> dict[str, int | None]:
        return {name: plan.limit(name) for name in Limit.values}

    def get_sla(self, plan: Plan) -> dict[str, float]:
        return {
            "availability_pct": float(plan.sla_availability_pct),
            "response_ms": plan.sla_response_ms,
            "error_pct": float(plan.sla_error_pct),
        }
