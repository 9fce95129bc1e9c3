"""Admin form data as a browser would post it."""

from __future__ import annotations


def rule_form(name: str = "Calm for sad", *, moods=("sad",), items=(), **fields) -> dict:
    data = {
        "name": name,
        "is_active": "on",
        "moods": list(moods),
        "min_confidence": "0.5",
        "tier": "2",
        "order": "10",
        "mode": "weighted",
        "picks_per_slot": "1",
        "cooldown_s": "10",
        "rule_items-TOTAL_FORMS": str(len(items)),
        "rule_items-INITIAL_FORMS": "0",
    }
    for i, (item, weight) in enumerate(items):
        data |= {
            f"rule_items-{i}-item": str(item.pk),
            f"rule_items-{i}-weight": str(weight),
            f"rule_items-{i}-position": str(i),
        }
    data.update(fields)
    return data


def theme_form(name: str = "Calm", **fields) -> dict:
    return {
        "name": name,
        "background": "#eef5f7",
        "surface": "#ffffff",
        "text": "#21343d",
        "muted": "#5d7480",
        "accent": "#3f7f94",
        "accent_text": "#ffffff",
        "font_scale": "1.1",
        "motion": "none",
        "background_url": "",
        **fields,
    }
