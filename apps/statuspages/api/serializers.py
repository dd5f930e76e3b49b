from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from apps.core.actors import ApiKeyRef
from apps.core.api import StrictSerializer
from apps.statuspages.models import (
    Badge,
    IncidentUpdate,
    Postmortem,
    StatusPage,
    StatusPageSection,
    UpdateStatus,
)


class PageOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    private_url = serializers.SerializerMethodField()
    has_password = serializers.SerializerMethodField()

    class Meta:
        model = StatusPage
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "published",
            "private",
            "has_password",
            "history_days",
            "url",
            "private_url",
            "created_at",
            "updated_at",
        ]

    def get_url(self, page: StatusPage) -> str:
        return reverse("statuspage", kwargs={"slug": page.slug})

    def get_private_url(self, page: StatusPage) -> str | None:
        """The token link that opens a private page without the password."""
        if not page.private:
            return None
        return f"{self.get_url(page)}?token={page.access_token}"

    def get_has_password(self, page: StatusPage) -> bool:
        return bool(page.password_hash)


class PageInput(StrictSerializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=60)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    published = serializers.BooleanField(required=False, default=True)
    private = serializers.BooleanField(required=False, default=False)
    password = serializers.CharField(
        required=False, allow_blank=True, write_only=True, min_length=8, max_length=128
    )
    rotate_token = serializers.BooleanField(required=False, default=False)
    history_days = serializers.IntegerField(required=False, min_value=1, max_value=90, default=14)


class SectionMonitorInput(StrictSerializer):
    monitor = serializers.UUIDField()
    display_name = serializers.CharField(required=False, allow_blank=True, max_length=200)


class SectionInput(StrictSerializer):
    page = serializers.UUIDField()
    name = serializers.CharField(max_length=200)
    position = serializers.IntegerField(required=False, min_value=0, default=0)
    monitors = SectionMonitorInput(many=True, required=False, default=list)


class SectionUpdateInput(SectionInput):
    # A section stays on its page: naming one is a 400, as for any read-only field.
    page = None


class SectionOutput(serializers.ModelSerializer):
    monitors = serializers.SerializerMethodField()

    class Meta:
        model = StatusPageSection
        fields = ["id", "page", "name", "position", "monitors", "created_at", "updated_at"]

    def get_monitors(self, section: StatusPageSection) -> list[dict]:
        return [
            {"monitor": str(item.monitor_id), "display_name": item.display_name}
            for item in section.items.all()
        ]


class UpdateInput(StrictSerializer):
    status = serializers.ChoiceField(choices=UpdateStatus.choices)
    message = serializers.CharField(max_length=5000)
    notify = serializers.BooleanField(required=False, default=True)


class UpdateOutput(serializers.ModelSerializer):
    # Who wrote it: `author` (a user id) or this API key.
    author_key = ApiKeyRef(allow_null=True, read_only=True)

    class Meta:
        model = IncidentUpdate
        fields = [
            "id",
            "incident",
            "status",
            "message",
            "author",
            "author_key",
            "posted_at",
            "notify",
            "notified_at",
            "recipients",
        ]


class PostmortemInput(StrictSerializer):
    body = serializers.CharField(max_length=50_000)
    published = serializers.BooleanField(required=False, default=True)


class PostmortemOutput(serializers.ModelSerializer):
    author_key = ApiKeyRef(allow_null=True, read_only=True)

    class Meta:
        model = Postmortem
        fields = [
            "incident",
            "body",
            "published",
            "author",
            "author_key",
            "created_at",
            "updated_at",
        ]


class BadgeInput(StrictSerializer):
    monitor = serializers.UUIDField()


class BadgeOutput(serializers.ModelSerializer):
    urls = serializers.SerializerMethodField()

    class Meta:
        model = Badge
        fields = ["id", "monitor", "token", "urls", "created_at"]

    def get_urls(self, badge: Badge) -> dict[str, str]:
        base = f"/badge/{badge.token}"
        return {
            "status": f"{base}/status.svg",
            "uptime": f"{base}/uptime.svg?period=30d",
            "response": f"{base}/response.svg",
            "shields": f"{base}/shields.json",
        }
