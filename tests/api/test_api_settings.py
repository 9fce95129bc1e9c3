"""The REST API's settings: throttle rates are parsed, and bad ones stop start-up."""

from __future__ import annotations

import pytest

from fer_site.api.rates import parse_rate
from tests.foundation.test_settings import PRODUCTION, manage


@pytest.mark.parametrize(
    ("rate", "expected"),
    [
        ("120/min", (120, 60)),
        ("10/s", (10, 1)),
        ("5000/day", (5000, 86400)),
        ("30/10s", (30, 10)),
        ("1/hour", (1, 3600)),
    ],
)
def test_it_reads_throttle_rates(rate, expected):
    assert parse_rate(rate) == expected


@pytest.mark.parametrize(
    "rate", ["", "often", "0/min", "10/fortnight", "-1/s", "10/0s", "1e3/min", "10 per minute"]
)
def test_it_refuses_rates_it_does_not_understand(rate):
    with pytest.raises(ValueError):
        parse_rate(rate)


def test_a_bad_throttle_rate_stops_start_up_with_the_variables_name(tmp_path):
    result = manage("check", env={"API_THROTTLE_RATE": "often"}, tmp_path=tmp_path)

    assert result.returncode != 0
    assert "API_THROTTLE_RATE='often'" in result.stderr


def test_check_deploy_stays_clean_with_the_api_installed(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION, tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr + result.stdout
