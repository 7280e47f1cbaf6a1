"""Each field and option, on plain objects (no database unless a test says so)."""

from __future__ import annotations

import datetime
import decimal
import enum
import random
import threading
import uuid
import zoneinfo
from types import SimpleNamespace as NS

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.utils import timezone

from django_scalekit import serializers as sk
from tests.testapp.models import Product, Shipment, Tag


def one(field, value, **attrs):
    cls = type("S", (sk.Serializer,), {"v": field})
    return cls(NS(v=value, **attrs)).data["v"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (sk.Field(), 5, 5),
        (sk.StrField(), 5, "5"),
        (sk.IntField(), "7", 7),
        (sk.FloatField(), "2.5", 2.5),
        (sk.BoolField(), 0, False),
        (sk.UUIDField(), uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (sk.DateField(), datetime.date(2024, 2, 29), "2024-02-29"),
        (sk.TimeField(), datetime.time(1, 2, 3, 4), "01:02:03.000004"),
        (sk.DurationField(), datetime.timedelta(days=1, seconds=3), "1 00:00:03"),
        (sk.DecimalField(), decimal.Decimal("1.50"), "1.50"),
        (sk.DecimalField(decimal_places=3), decimal.Decimal("1.5"), "1.500"),
        (sk.DecimalField(decimal_places=1), decimal.Decimal("1.25"), "1.2"),  # half-even, as DRF
        (sk.DecimalField(decimal_places=2), 3, "3.00"),
        (sk.DecimalField(decimal_places=2), 0.1, "0.10"),
        (sk.DecimalField(coerce_to_string=False, decimal_places=2), decimal.Decimal("2.345"), 2.34),
        (sk.DecimalField(decimal_places=8), decimal.Decimal("1E-8"), "0.00000001"),
        (sk.DateTimeField(), "2024-01-01", "2024-01-01"),  # strings pass, as in DRF
        (sk.DateField(), "", None),
        (sk.ListField(sk.IntField()), ("1", None), [1, None]),
    ],
)
def test_field_values(field, value, expected):
    assert one(field, value) == expected


@pytest.mark.parametrize(
    "field",
    [
        sk.StrField(),
        sk.IntField(),
        sk.FloatField(),
        sk.BoolField(),
        sk.DecimalField(),
        sk.DateTimeField(),
        sk.DateField(),
        sk.TimeField(),
        sk.DurationField(),
        sk.UUIDField(),
        sk.EnumField(),
        sk.FileField(),
        sk.ListField(),
        sk.PrimaryKeyRelatedField(),
        sk.PrimaryKeyRelatedField(many=True),
    ],
)
def test_none_is_null_for_every_typed_field(field):
    assert one(field, None) is None


def test_decimal_short_path_matches_drf_formatting():
    from rest_framework.fields import DecimalField as DRFDecimal

    rng = random.Random(3)
    for places in range(9):
        ours = sk.DecimalField(max_digits=20, decimal_places=places)
        theirs = DRFDecimal(max_digits=20, decimal_places=places)
        for _ in range(300):
            value = decimal.Decimal(rng.randint(-(10**9), 10**9)).scaleb(-rng.randint(0, 12))
            assert one(ours, value) == theirs.to_representation(value), (places, value)


def test_datetime_conversions():
    field = sk.DateTimeField()
    kolkata = zoneinfo.ZoneInfo("Asia/Kolkata")
    aware = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=kolkata)
    assert one(field, aware) == "2024-01-01T06:30:00Z"  # moved to the current zone, UTC
    naive = datetime.datetime(2024, 1, 1, 12, 0)
    assert one(field, naive) == "2024-01-01T12:00:00Z"  # made aware in the current zone
    with timezone.override(kolkata):
        assert one(field, aware) == "2024-01-01T12:00:00+05:30"
    assert one(sk.DateTimeField(format="%Y/%m/%d %H"), aware) == "2024/01/01 06"


class Color(enum.Enum):
    RED = "r"


def test_enum_field():
    assert one(sk.EnumField(enum=Color), Color.RED) == "r"
    assert one(sk.EnumField(), Shipment.Status.SENT) == "sent"
    assert one(sk.EnumField(), "raw") == "raw"


def test_file_field_url_and_empty():
    class F:
        url = "/media/a.txt"

        def __bool__(self):
            return True

    assert one(sk.FileField(), F()) == "/media/a.txt"
    assert one(sk.ImageField(), "") is None
    assert one(sk.FileField(), NS()) is None  # no url: null, as DRF


def test_label_call_star_and_keyword_names():
    class S(sk.Serializer):
        a = sk.Field(label="A")
        b = sk.IntField(call=True)
        whole = sk.Field(source="*")
        kw = sk.Field(attr="class")
        dotted = sk.StrField(source="x.y.z")

    obj = NS(a=1, b=lambda: "2", x=NS(y=None))
    setattr(obj, "class", "c")
    data = S(obj).data
    assert data == {"A": 1, "b": 2, "whole": obj, "kw": "c", "dotted": None}


def test_method_field_sees_context_at_every_level():
    class Leaf(sk.Serializer):
        who = sk.MethodField()

        def get_who(self, obj):
            return (self.context["user"], type(self.root).__name__, obj.n)

    class Mid(sk.Serializer):
        leaves = Leaf(many=True)

    class Top(sk.Serializer):
        mid = Mid()

    data = Top(NS(mid=NS(leaves=[NS(n=1), NS(n=2)])), context={"user": "ann"}).data
    assert data == {"mid": {"leaves": [{"who": ("ann", "Top", 1)}, {"who": ("ann", "Top", 2)}]}}


def test_missing_method_is_a_clear_error():
    class S(sk.Serializer):
        x = sk.MethodField()

    with pytest.raises(AttributeError, match="has no method 'get_x'"):
        S(NS()).data  # noqa: B018


def test_sparse_fields_and_generated_source():
    class S(sk.Serializer):
        a = sk.Field()
        b = sk.IntField()
        c = sk.Field(label="see")

    obj = NS(a=1, b="2", c=3)
    assert S(obj, fields=["b", "see"]).data == {"b": 2, "see": 3}
    assert S([obj], many=True, fields=["a"]).data == [{"a": 1}]
    assert S.output_names() == ["a", "b", "see"]
    assert "def many(objs, s):" in S.generated_source()
    assert "'a'" not in S.generated_source(fields=["b"])


def test_read_only_errors_say_what_to_use():
    class S(sk.Serializer):
        a = sk.Field()

    s = S(data={"a": 1})
    for action in (s.is_valid, s.save):
        with pytest.raises(sk.ReadOnlyError, match="rest_framework serializer"):
            action()
    for attribute in ("errors", "validated_data", "data"):
        with pytest.raises(sk.ReadOnlyError):
            getattr(s, attribute)
    assert S().data == {}
    assert S(many=True).data == []
    with pytest.raises(TypeError, match="read-only"):
        sk.Field(read_only=False)


def test_a_serializer_nesting_itself():
    class Node(sk.Serializer):
        name = sk.Field()

    Node._declared_fields["children"] = Node(many=True)
    tree = NS(name="a", children=[NS(name="b", children=[NS(name="c", children=())])])
    assert Node(tree).data == {
        "name": "a",
        "children": [{"name": "b", "children": [{"name": "c", "children": []}]}],
    }


def test_compiling_from_many_threads_at_once():
    class S(sk.Serializer):
        a = sk.IntField()
        kids = type("K", (sk.Serializer,), {"b": sk.StrField()})(many=True)

    obj = NS(a="1", kids=[NS(b=2)])
    start = threading.Barrier(8)
    results = []

    def work():
        start.wait()
        results.extend(S(obj).data for _ in range(50))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"a": 1, "kids": [{"b": "2"}]}] * 400


@pytest.mark.django_db
def test_related_managers_are_iterated_without_all():
    product = Product.objects.create(name="p", price=1)
    product.tags.set([Tag.objects.create(name="x"), Tag.objects.create(name="y")])

    class TagS(sk.Serializer):
        name = sk.StrField()

    class P(sk.Serializer):
        tags = TagS(many=True)
        tag_names = sk.ListField(sk.StrField(), source="tags")
        tag_ids = sk.PrimaryKeyRelatedField(many=True, attr="tags")

    data = P(product).data
    assert sorted(t["name"] for t in data["tags"]) == ["x", "y"]
    assert sorted(data["tag_names"]) == ["x", "y"]
    assert sorted(data["tag_ids"]) == sorted(product.tags.values_list("pk", flat=True))
    # a manager given as the instance of many=True works too
    assert len(TagS(product.tags, many=True).data) == 2


def test_model_serializer_configuration_errors():
    class NoFields(sk.ModelSerializer):
        class Meta:
            model = Product

    class Unknown(sk.ModelSerializer):
        class Meta:
            model = Product
            fields = ["id", "nope"]

    with pytest.raises(ImproperlyConfigured, match="fields"):
        NoFields(Product()).data  # noqa: B018
    with pytest.raises(ImproperlyConfigured, match="'nope'"):
        Unknown(Product()).data  # noqa: B018


def test_model_serializer_exclude_and_declared_override():
    class P(sk.ModelSerializer):
        name = sk.Field(source="name.upper", call=True)

        class Meta:
            model = Product
            exclude = ["tags", "sku", "created", "review_count", "reviews_total"]

    data = P(Product(id=1, name="ab", price=decimal.Decimal("1"), active=True)).data
    assert data == {"id": 1, "name": "AB", "price": "1.00", "active": True}


def test_use_tz_off():
    with override_settings(USE_TZ=False):
        aware = datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.UTC)
        assert one(sk.DateTimeField(), aware) == "2024-01-01T12:00:00"


@pytest.mark.parametrize("active", [None, "UTC", "Europe/London", "America/New_York"])
def test_datetime_output_equals_drf_for_many_values(active):
    from rest_framework.fields import DateTimeField as DRFDateTime

    rng = random.Random(7)
    zones = [datetime.UTC, zoneinfo.ZoneInfo("UTC"), zoneinfo.ZoneInfo("Europe/London"), None]
    values = [
        datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
        + datetime.timedelta(seconds=rng.randint(0, 10**9), microseconds=rng.randint(0, 10**6))
        for _ in range(200)
    ]
    values = [v.replace(tzinfo=rng.choice(zones)) for v in values]

    class S(sk.Serializer):
        v = sk.DateTimeField()

    def check():
        ours = S([NS(v=v) for v in values], many=True).data
        assert [row["v"] for row in ours] == [DRFDateTime().to_representation(v) for v in values]

    if active is None:
        check()
    else:
        with timezone.override(zoneinfo.ZoneInfo(active)):
            check()


def test_field_subsets_from_requests_cannot_grow_the_cache_without_bound(monkeypatch):
    from django_scalekit.serializers import _compile

    class S(sk.Serializer):
        a = sk.Field()
        b = sk.Field()

    monkeypatch.setattr(_compile, "MAX_CACHED", len(_compile._cache) + 3)
    for i in range(20):
        subset = ["a"] if i % 2 else ["b"]
        assert S(NS(a=1, b=2), fields=subset).data == ({"a": 1} if i % 2 else {"b": 2})
        assert S(NS(a=1, b=2)).data == {"a": 1, "b": 2}
    assert len(_compile._cache) <= _compile.MAX_CACHED + 1
    assert (S, None) in _compile._cache  # full serializers are never evicted


def test_nested_sparse_fields():
    class Leaf(sk.Serializer):
        x = sk.Field()
        y = sk.Field()

    class Top(sk.Serializer):
        a = sk.Field()
        leaf = Leaf()
        leaves = Leaf(many=True, label="all")

    obj = NS(a=1, leaf=NS(x=1, y=2), leaves=[NS(x=3, y=4)])
    assert Top(obj, fields=["leaf.y", "all.x", "all"]).data == {"leaf": {"y": 2}, "all": [{"x": 3}]}
    assert Top(obj, fields=["leaf"]).data == {"leaf": {"x": 1, "y": 2}}
    assert Top.unknown_fields(["a", "leaf.z", "a.b", "all.y", "nope"]) == ["a.b", "leaf.z", "nope"]


def test_dict_serializer_source_walks_nested_dicts():
    class S(sk.DictSerializer):
        literal = sk.Field(attr="a.b")
        walked = sk.IntField(source="x.y")

    assert S({"a.b": 1, "x": {"y": "2"}}).data == {"literal": 1, "walked": 2}
    assert S({"a.b": 1, "x": None}).data == {"literal": 1, "walked": None}
