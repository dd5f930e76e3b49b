from __future__ import annotations

from rest_framework import serializers

from apps.core.api import StrictSerializer


class UpgradeInput(StrictSerializer):
    plan = serializers.SlugField(max_length=32)


class UpgradeOutput(serializers.Serializer):
    checkout_url = serializers.URLField()
    session_id = serializers.CharField()


class PortalOutput(serializers.Serializer):
    portal_url = serializers.URLField()


class CompOutput(serializers.Serializer):
    plan = serializers.CharField()
    reason = serializers.CharField()
    expires_at = serializers.DateTimeField()


class BillingOutput(serializers.Serializer):
    plan = serializers.CharField()
    subscription_status = serializers.CharField(allow_null=True)
    subscription_plan = serializers.CharField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancel_at_period_end = serializers.BooleanField()
    grace_until = serializers.DateTimeField(allow_null=True)
    comp = CompOutput(allow_null=True)
