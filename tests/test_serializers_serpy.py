"""serpy's documented behaviour, reproduced against our import (swap one line, same output).

Each case builds the same serializer with ``serpy`` and with ``django_scalekit.serializers``
and compares the output on the same objects.
"""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
import serpy

from django_scalekit import serializers as sk

MODULES = pytest.mark.parametrize("mod", [serpy, sk], ids=["serpy", "scalekit"])


class Foo:
    y = 1
    z = 2
    super_long_thing = 10

    def x(self):
        return 5


def same(build, data, many=False):
    """``build(module)`` returns a serializer class; both modules give the same output."""
    expected = build(serpy)(data, many=many).data
    got = build(sk)(data, many=many).data
    assert got == expected
    assert type(got) is not type(None)
    return got


def test_readme_example():
    def build(mod):
        class FooSerializer(mod.Serializer):
            w = mod.Field(attr="super_long_thing")
            x = mod.Field(call=True)
            plus = mod.MethodField()

            def get_plus(self, obj):
                return obj.y + obj.z

        return FooSerializer

    assert same(build, Foo()) == {"w": 10, "x": 5, "plus": 3}
    assert same(build, [Foo(), Foo()], many=True) == [{"w": 10, "x": 5, "plus": 3}] * 2


def test_readme_nested_and_many():
    def build(mod):
        class FooSerializer(mod.Serializer):
            y = mod.IntField()
            z = mod.FloatField()

        class NestedSerializer(mod.Serializer):
            foo = FooSerializer()
            foos = FooSerializer(many=True)
            label_me = mod.StrField(attr="name", label="title")

        return NestedSerializer

    obj = NS(foo=Foo(), foos=[Foo(), Foo()], name=3)
    assert same(build, obj) == {
        "foo": {"y": 1, "z": 2.0},
        "foos": [{"y": 1, "z": 2.0}] * 2,
        "title": "3",
    }


def test_method_field_with_method_name_and_inheritance():
    def build(mod):
        class Base(mod.Serializer):
            a = mod.Field()
            minus = mod.MethodField("do_minus")

            def do_minus(self, obj):
                return obj.a - obj.b

        class Child(Base):
            b = mod.IntField()
            a = mod.StrField()  # overrides the base field, keeps its position

        return Child

    assert same(build, NS(a=5, b=3)) == {"a": "5", "minus": 2, "b": 3}


def test_custom_field_to_value_and_as_getter():
    def build(mod):
        class Upper(mod.Field):
            def to_value(self, value):
                return value.upper()

        class Constant(mod.Field):
            def as_getter(self, name, serializer_cls):
                return lambda obj: f"{name}!"

        class WithSelf(mod.Field):
            getter_takes_serializer = True

            def as_getter(self, name, serializer_cls):
                return lambda serializer, obj: type(serializer).__name__

        class S(mod.Serializer):
            name = Upper()
            const = Constant()
            who = WithSelf()

        return S

    assert same(build, NS(name="ann")) == {"name": "ANN", "const": "const!", "who": "S"}


def test_required_false_omits_missing_attributes_and_skips_to_value_for_none():
    def build(mod):
        class S(mod.Serializer):
            a = mod.IntField(required=False)
            b = mod.IntField(required=False)
            c = mod.Field(required=False, call=True)
            d = mod.StrField(attr="x.y", required=False)

        return S

    assert same(build, NS(a=None, c=lambda: 3, x=None)) == {"a": None, "c": 3}
    assert same(build, NS(a="4", b=2, c=None, x=NS(y=1))) == {"a": 4, "b": 2, "c": None, "d": "1"}


def test_required_attribute_missing_raises_like_serpy():
    class S(sk.Serializer):
        a = sk.Field()

    with pytest.raises(AttributeError):
        S(NS()).data  # noqa: B018


def test_dict_serializer():
    def build(mod):
        class S(mod.DictSerializer):
            foo = mod.IntField()
            bar = mod.FloatField()
            dotted = mod.Field(attr="a.b")

        return S

    assert same(build, {"foo": "5", "bar": "2.2", "a.b": 1}) == {"foo": 5, "bar": 2.2, "dotted": 1}


def test_to_value_entry_point_and_bool_field():
    def build(mod):
        class S(mod.Serializer):
            ok = mod.BoolField()

        return S

    for mod in (serpy, sk):
        assert build(mod)(many=True).to_value([NS(ok=1), NS(ok=0)]) == [{"ok": True}, {"ok": False}]


def test_nested_serializer_overriding_to_value_is_called():
    def build(mod):
        class Inner(mod.Serializer):
            v = mod.Field()

            def to_value(self, instance):
                return {"wrapped": super().to_value(instance)}

        class Outer(mod.Serializer):
            inner = Inner()

        return Outer

    assert same(build, NS(inner=NS(v=1))) == {"inner": {"wrapped": {"v": 1}}}


# Where serpy is awkward, ours does better; these differences are deliberate.


def test_typed_fields_write_none_as_null_where_serpy_converts_or_raises():
    class S(sk.Serializer):
        name = sk.StrField()
        n = sk.IntField()

    assert S(NS(name=None, n=None)).data == {"name": None, "n": None}

    class Serpy(serpy.Serializer):
        name = serpy.StrField()

    assert Serpy(NS(name=None)).data == {"name": "None"}


def test_nested_none_is_null_where_serpy_raises():
    class Inner(sk.Serializer):
        v = sk.Field()

    class Outer(sk.Serializer):
        inner = Inner()
        inners = Inner(many=True)

    assert Outer(NS(inner=None, inners=None)).data == {"inner": None, "inners": None}


def test_source_tolerates_none_on_the_way_and_star():
    class S(sk.Serializer):
        city = sk.StrField(source="user.address.city")
        me = sk.MethodField()
        whole = sk.Field(source="*")

        def get_me(self, obj):
            return obj.user is None

    obj = NS(user=None)
    data = S(obj).data
    assert data["city"] is None
    assert data["me"] is True
    assert data["whole"] is obj
    assert S(NS(user=NS(address=NS(city=5)))).data["city"] == "5"


def test_attr_and_source_together_is_an_error():
    with pytest.raises(TypeError, match="either attr"):
        sk.Field(attr="a", source="b")


def test_list_field_converts_each_item():
    class S(sk.Serializer):
        nums = sk.ListField(sk.IntField())
        raw = sk.ListField()

    assert S(NS(nums=["1", None, 3], raw=(1, "a"))).data == {"nums": [1, None, 3], "raw": [1, "a"]}


def test_recursive_serializer():
    class Node(sk.Serializer):
        name = sk.Field()
        children = sk.MethodField()

        def get_children(self, obj):
            return Node(obj.children, many=True, context=self.context).to_value(obj.children)

    tree = NS(name="a", children=[NS(name="b", children=[])])
    assert Node(tree).data == {"name": "a", "children": [{"name": "b", "children": []}]}
