"""serpy's README, its custom-fields page and its own test suite, run against both imports.

Where serpy 0.3.1 and ours deliberately differ, the case is in test_serializers_serpy.py.
"""

from __future__ import annotations

import pytest
import serpy

from django_scalekit import serializers as sk

pytestmark = pytest.mark.parametrize("mod", [serpy, sk], ids=["serpy", "scalekit"])


class Obj:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def test_readme_simple(mod):
    class Foo:
        y = "hello"
        z = 9.5

        def __init__(self, x):
            self.x = x

    class FooSerializer(mod.Serializer):
        x = mod.IntField()
        y = mod.Field()
        z = mod.Field()

    assert FooSerializer(Foo(1)).data == {"x": 1, "y": "hello", "z": 9.5}
    data = FooSerializer([Foo(i) for i in range(100)], many=True).data
    assert data[:2] == [{"x": 0, "y": "hello", "z": 9.5}, {"x": 1, "y": "hello", "z": 9.5}]


def test_readme_nested(mod):
    class Nestee:
        n = "hi"

    class Foo:
        x = 1
        nested = Nestee()

    class NesteeSerializer(mod.Serializer):
        n = mod.Field()

    class FooSerializer(mod.Serializer):
        x = mod.Field()
        nested = NesteeSerializer()

    assert FooSerializer(Foo()).data == {"x": 1, "nested": {"n": "hi"}}


def test_readme_inheritance_and_mixins(mod):
    class ASerializer(mod.Serializer):
        a = mod.Field()

    class CSerializer(mod.Serializer):
        c = mod.Field()

    class ABSerializer(ASerializer):
        b = mod.Field()

    class ABCSerializer(ABSerializer, CSerializer):
        pass

    a = Obj(a=5, b="hello", c=100)
    assert ASerializer(a).data == {"a": 5}
    assert ABSerializer(a).data == {"a": 5, "b": "hello"}
    assert dict(ABCSerializer(a).data) == {"a": 5, "b": "hello", "c": 100}


def test_custom_fields_page(mod):
    class Add5Field(mod.Field):
        def to_value(self, value):
            return value + 5

    class ValidateDotField(mod.Field):
        def to_value(self, value):
            if "." not in value:
                raise ValueError("no dot!")
            return value

    class ObjSerializer(mod.Serializer):
        foo = Add5Field()
        dotted = ValidateDotField()

    assert ObjSerializer(Obj(foo=9, dotted="a.b")).data == {"foo": 14, "dotted": "a.b"}
    with pytest.raises(ValueError, match="no dot"):
        ObjSerializer(Obj(foo=9, dotted="ab")).data  # noqa: B018


def test_data_cached(mod):
    class ASerializer(mod.Serializer):
        a = mod.Field()

    serializer = ASerializer(Obj(a=5))
    assert serializer.data is serializer.data


def test_serializer_as_field_many_and_call(mod):
    class ASerializer(mod.Serializer):
        a = mod.Field()

    class BSerializer(mod.Serializer):
        b = ASerializer(many=True)
        c = ASerializer(call=True)

    data = BSerializer(Obj(b=[Obj(a=i) for i in range(3)], c=lambda: Obj(a=3))).data
    assert data == {"b": [{"a": 0}, {"a": 1}, {"a": 2}], "c": {"a": 3}}


def test_method_fields(mod):
    class ASerializer(mod.Serializer):
        a = mod.MethodField()
        b = mod.MethodField("add_9")

        def get_a(self, obj):
            return obj.a + 5

        def add_9(self, obj):
            return obj.a + 9

    assert ASerializer(Obj(a=2)).data == {"a": 7, "b": 11}


def test_to_value_called(mod):
    class ASerializer(mod.Serializer):
        a = mod.IntField()
        b = mod.FloatField(call=True)
        c = mod.StrField(attr="foo.bar.baz")
        d = mod.Field("x.y.z")  # attr given positionally

    o = Obj(a="5", b=lambda: "6.2", foo=Obj(bar=Obj(baz=10)), x=Obj(y=Obj(z=2)))
    assert ASerializer(o).data == {"a": 5, "b": 6.2, "c": "10", "d": 2}


def test_dict_serializer(mod):
    class ASerializer(mod.DictSerializer):
        a = mod.IntField()
        b = mod.Field(attr="foo")

    assert ASerializer({"a": "2", "foo": "hello"}).data == {"a": 2, "b": "hello"}


def test_optional_field_of_serpy_0_3_1(mod):
    class ASerializer(mod.Serializer):
        a = mod.IntField(required=False)
        m = mod.MethodField(required=False)

        def get_m(self, obj):
            return obj.a

    assert ASerializer(Obj(a=None)).data == {"a": None, "m": None}
    assert ASerializer(Obj(a="5")).data == {"a": 5, "m": "5"}


def test_custom_output_label_and_a_field_named_context(mod):
    class ASerializer(mod.Serializer):
        context = mod.StrField(label="@context")
        content = mod.MethodField(label="@content")

        def get_content(self, obj):
            return obj.content

    data = ASerializer(Obj(context="http://foo/", content="http://baz/")).data
    assert data == {"@context": "http://foo/", "@content": "http://baz/"}
