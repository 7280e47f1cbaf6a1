"""SCALEKIT_SERIALIZERS: checks by id, and compiled code follows setting changes."""

from __future__ import annotations

import datetime
import decimal
from types import SimpleNamespace as NS

import pytest
from django.test import override_settings

from django_scalekit import serializers as sk
from django_scalekit.checks import check_settings


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"COERCE_DECIMAL_TO_STRING": "yes"}, ["django_scalekit.E010"]),
        ({"DATETIME_FORMAT": 5}, ["django_scalekit.E011"]),
        ({"DATETIME_FORMAT": "iso"}, ["django_scalekit.E011"]),
        ({"DATETIME_FORMAT": "%Y"}, []),
        ({"OMIT_NONE": 1}, ["django_scalekit.E012"]),
        ({"OMIT_NONE": True}, []),
        ({"DATETIME_FORMAT": "ISO-8601"}, []),
    ],
)
def test_checks(value, expected):
    with override_settings(SCALEKIT_SERIALIZERS=value):
        errors = check_settings()
    assert [e.id for e in errors] == expected
    assert all(e.hint for e in errors)


class S(sk.Serializer):
    price = sk.DecimalField(decimal_places=2)
    when = sk.DateTimeField()


OBJ = NS(
    price=decimal.Decimal("1.5"), when=datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
)


def test_settings_change_recompiles():
    assert S(OBJ).data == {"price": "1.50", "when": "2024-05-06T07:08:09Z"}
    with override_settings(
        SCALEKIT_SERIALIZERS={"COERCE_DECIMAL_TO_STRING": False, "DATETIME_FORMAT": "%d/%m/%Y"}
    ):
        assert S(OBJ).data == {"price": 1.5, "when": "06/05/2024"}
    assert S(OBJ).data == {"price": "1.50", "when": "2024-05-06T07:08:09Z"}


def test_per_field_options_win_over_settings():
    class T(sk.Serializer):
        price = sk.DecimalField(coerce_to_string=False)
        when = sk.DateTimeField(format="%H:%M")

    assert T(OBJ).data == {"price": 1.5, "when": "07:08"}


def test_naive_datetimes_without_use_tz():
    naive = NS(price=1, when=datetime.datetime(2024, 1, 1, 10, 0))
    with override_settings(USE_TZ=False):
        assert S(naive).data["when"] == "2024-01-01T10:00:00"
        assert S(OBJ).data["when"] == "2024-05-06T07:08:09"


class Inner(sk.Serializer):
    a = sk.Field()
    b = sk.IntField(required=False)


class Outer(sk.Serializer):
    x = sk.Field()
    inner = Inner()
    inners = Inner(many=True)
    m = sk.MethodField()

    def get_m(self, obj):
        return None


NULLY = NS(x=None, inner=NS(a=None, b=None), inners=[NS(a=1, b=None), NS(a=None)])


def test_none_written_as_null_by_default():
    assert Outer(NULLY).data == {
        "x": None,
        "inner": {"a": None, "b": None},
        "inners": [{"a": 1, "b": None}, {"a": None}],  # b missing and not required: left out
        "m": None,
    }


def test_omit_none_setting_and_class_override():
    with override_settings(SCALEKIT_SERIALIZERS={"OMIT_NONE": True}):
        assert Outer(NULLY).data == {"inner": {}, "inners": [{"a": 1}, {}]}
        assert Outer([NULLY], many=True).data == [{"inner": {}, "inners": [{"a": 1}, {}]}]

    class Keeps(Inner):
        omit_none = False

    class Drops(Inner):
        omit_none = True

    with override_settings(SCALEKIT_SERIALIZERS={"OMIT_NONE": True}):
        assert Keeps(NS(a=None, b=None)).data == {"a": None, "b": None}
    assert Drops(NS(a=None, b=2)).data == {"b": 2}
