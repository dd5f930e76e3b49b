from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from apps.monitors import services as monitor_services
from apps.tenants.models import Membership, Organization, Role

PASSWORD = "correct horse battery staple 42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    username = factory.LazyAttribute(lambda u: u.email)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MEMBER


#: a TCP check of a closed local port: the default target of a monitor made for a test
CLOSED_PORT = {"host": "127.0.0.1", "port": 9}


def make_monitor(org, name: str = "api", *, kind: str = "tcp", config=None, **fields):
    """A monitor created through the monitors service, as the API creates one (schedule,
    audit and plan gate included); a TCP check of a closed local port unless told."""
    data = {"name": name, "kind": kind, "config": CLOSED_PORT if config is None else config}
    return monitor_services.monitor_create(org=org, data={**data, **fields})
