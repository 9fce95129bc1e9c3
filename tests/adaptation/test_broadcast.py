"""Any edit of rules, themes or items reaches connected pages through the channel layer, once per commit."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from adaptation.models import ContentItem, Rule, Theme
from adaptation.services import CONTENT_GROUP

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def in_memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    return get_channel_layer()


async def _listen(layer) -> str:
    channel = await layer.new_channel()
    await layer.group_add(CONTENT_GROUP, channel)
    return channel


async def _received(layer, channel: str) -> list[dict]:
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout=0.2))
        except TimeoutError:
            return messages


async def test_it_broadcasts_when_a_theme_an_item_or_a_rule_changes(in_memory_layer):
    channel = await _listen(in_memory_layer)

    theme = await Theme.objects.acreate(name="Calm")
    item = await ContentItem.objects.acreate(kind="text", title="Hello", slot="hero")
    rule = await Rule.objects.acreate(name="Happy", moods=["happy"], theme=theme)
    await rule.adelete()

    messages = await _received(in_memory_layer, channel)
    assert messages == [{"type": "content.changed"}] * 4
    assert item.pk


async def test_it_broadcasts_once_for_an_admin_save_with_inline_items(in_memory_layer, admin_client):
    first = await ContentItem.objects.acreate(kind="text", title="One", slot="hero")
    second = await ContentItem.objects.acreate(kind="text", title="Two", slot="sidebar")
    channel = await _listen(in_memory_layer)
    data = {
        "name": "Calm for sad",
        "is_active": "on",
        "moods": ["sad"],
        "min_confidence": "0.5",
        "tier": "2",
        "order": "10",
        "mode": "weighted",
        "picks_per_slot": "1",
        "cooldown_s": "10",
        "rule_items-TOTAL_FORMS": "2",
        "rule_items-INITIAL_FORMS": "0",
        "rule_items-0-item": str(first.pk),
        "rule_items-0-weight": "2",
        "rule_items-0-position": "0",
        "rule_items-1-item": str(second.pk),
        "rule_items-1-weight": "1",
        "rule_items-1-position": "1",
    }

    response = await sync_to_async(admin_client.post)("/admin/adaptation/rule/add/", data)

    assert response.status_code == 302
    assert await Rule.objects.filter(name="Calm for sad", rule_items__isnull=False).acount() == 2
    assert await _received(in_memory_layer, channel) == [{"type": "content.changed"}]


async def test_it_does_not_broadcast_a_rolled_back_change(in_memory_layer):
    channel = await _listen(in_memory_layer)

    @sync_to_async
    def change_then_fail() -> None:
        from django.db import transaction

        with pytest.raises(RuntimeError), transaction.atomic():
            Theme.objects.create(name="Never")
            raise RuntimeError("operator cancelled")

    await change_then_fail()

    assert await _received(in_memory_layer, channel) == []
