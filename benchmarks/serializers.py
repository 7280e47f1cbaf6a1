"""Serializers side by side: hand-written dict code, ours, serpy, drf-serpy, DRF, marshmallow,
pydantic v2 and msgspec, on the same objects, with the output checked equal.

    nox -s bench -- serializers          (or: .nox/bench/bin/python benchmarks/serializers.py)
    QUICK=1 ...                          fewer rounds

Shapes: "nested" = 8 scalars (a tz-aware datetime written as ISO 8601 with Z, a Decimal
written as a string, a UUID), a FK object of 3 fields and 5 children of 3 fields; "flat" = 10
plain attributes. 10,000 objects per call, and a single object's ``.data``. Then end to end:
a DRF list endpoint of 100 reviews with user, product and tags through the test client.
"""

import datetime
import decimal
import os
import statistics
import sys
import time
import uuid

from _env import interleaved, setup, table

QUICK = bool(os.environ.get("QUICK"))
ROUNDS = 5 if QUICK else 11
N = 10_000


class Obj:
    def __init__(self, **kw: object) -> None:
        self.__dict__.update(kw)


def make_nested(n: int) -> list[Obj]:
    base = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    out = []
    for i in range(n):
        owner = Obj(id=i % 97, username=f"user{i % 97}", email=f"u{i % 97}@example.com")
        children = [Obj(id=j, name=f"tag{j}", score=j * 3) for j in range(5)]
        out.append(
            Obj(
                id=i,
                sku=uuid.UUID(int=i),
                name=f"product {i}",
                price=decimal.Decimal(i % 1000) / 4 + decimal.Decimal("0.00"),
                active=bool(i % 2),
                created=base + datetime.timedelta(seconds=i * 37, microseconds=i),
                rating=i % 5,
                body="text " * 4,
                owner=owner,
                children=children,
            )
        )
    return out


FLAT = ["id", "username", "first_name", "last_name", "email", "is_staff", "is_active",
        "is_superuser", "password", "score"]  # fmt: skip


def make_flat(n: int) -> list[Obj]:
    return [
        Obj(
            id=i,
            username=f"u{i}",
            first_name="Ann",
            last_name="Lee",
            email=f"u{i}@x.org",
            is_staff=False,
            is_active=True,
            is_superuser=False,
            password="!",
            score=i * 2,
        )
        for i in range(n)
    ]


def iso(value: datetime.datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def hand_nested(objs: list[Obj]) -> list[dict[str, object]]:
    return [
        {
            "id": o.id,
            "sku": str(o.sku),
            "name": o.name,
            "price": str(o.price),
            "active": o.active,
            "created": iso(o.created),
            "rating": o.rating,
            "body": o.body,
            "owner": {"id": o.owner.id, "username": o.owner.username, "email": o.owner.email},
            "children": [{"id": c.id, "name": c.name, "score": c.score} for c in o.children],
        }
        for o in objs
    ]


def hand_flat(objs: list[Obj]) -> list[dict[str, object]]:
    return [
        {
            "id": o.id,
            "username": o.username,
            "first_name": o.first_name,
            "last_name": o.last_name,
            "email": o.email,
            "is_staff": o.is_staff,
            "is_active": o.is_active,
            "is_superuser": o.is_superuser,
            "password": o.password,
            "score": o.score,
        }
        for o in objs
    ]


def build_candidates():
    import drf_serpy
    import marshmallow
    import msgspec
    import pydantic
    import serpy
    from rest_framework import serializers as drf

    from django_scalekit import serializers as sk
    from tests.testapp.models import Product, Tag, User

    nested: dict[str, object] = {}
    flat: dict[str, object] = {}

    # ours -----------------------------------------------------------------
    class SkOwner(sk.Serializer):
        id = sk.IntField()
        username = sk.StrField()
        email = sk.StrField()

    class SkChild(sk.Serializer):
        id = sk.IntField()
        name = sk.StrField()
        score = sk.IntField()

    class SkNested(sk.Serializer):
        id = sk.IntField()
        sku = sk.UUIDField()
        name = sk.StrField()
        price = sk.DecimalField(max_digits=10, decimal_places=2)
        active = sk.BoolField()
        created = sk.DateTimeField()
        rating = sk.IntField()
        body = sk.StrField()
        owner = SkOwner()
        children = SkChild(many=True)

    class SkNestedPlain(sk.Serializer):
        """Typed only where the hand-written code converts too (UUID, Decimal, datetime)."""

        id = sk.Field()
        sku = sk.UUIDField()
        name = sk.Field()
        price = sk.DecimalField(max_digits=10, decimal_places=2)
        active = sk.Field()
        created = sk.DateTimeField()
        rating = sk.Field()
        body = sk.Field()
        owner = type("O", (sk.Serializer,), {k: sk.Field() for k in ("id", "username", "email")})()
        children = type("C", (sk.Serializer,), {k: sk.Field() for k in ("id", "name", "score")})(
            many=True
        )

    class SkFlat(sk.Serializer):
        locals().update({name: sk.Field() for name in FLAT})

    nested["ours"] = lambda objs: SkNested(objs, many=True).data
    nested["ours, Field() where no conversion"] = lambda objs: SkNestedPlain(objs, many=True).data
    flat["ours"] = lambda objs: SkFlat(objs, many=True).data

    # serpy / drf-serpy: no datetime, Decimal or UUID fields: to_value overrides -----
    def serpy_classes(mod):
        class Uuid(mod.Field):
            def to_value(self, value):
                return str(value)

        class Dec(mod.Field):
            def to_value(self, value):
                return str(value)

        class Dt(mod.Field):
            def to_value(self, value):
                return iso(value)

        class Owner(mod.Serializer):
            id = mod.IntField()
            username = mod.StrField()
            email = mod.StrField()

        class Child(mod.Serializer):
            id = mod.IntField()
            name = mod.StrField()
            score = mod.IntField()

        class Nested(mod.Serializer):
            id = mod.IntField()
            sku = Uuid()
            name = mod.StrField()
            price = Dec()
            active = mod.BoolField()
            created = Dt()
            rating = mod.IntField()
            body = mod.StrField()
            owner = Owner()
            children = Child(many=True)

        class Flat(mod.Serializer):
            locals().update({name: mod.Field() for name in FLAT})

        return Nested, Flat

    for label, mod in (("serpy 0.3.1", serpy), ("drf-serpy", drf_serpy)):
        n_cls, f_cls = serpy_classes(mod)
        nested[label] = lambda objs, c=n_cls: c(objs, many=True).data
        flat[label] = lambda objs, c=f_cls: c(objs, many=True).data

    # DRF Serializer (read-only fields) and ModelSerializer -------------------
    class DrfOwner(drf.Serializer):
        id = drf.IntegerField(read_only=True)
        username = drf.CharField(read_only=True)
        email = drf.CharField(read_only=True)

    class DrfChild(drf.Serializer):
        id = drf.IntegerField(read_only=True)
        name = drf.CharField(read_only=True)
        score = drf.IntegerField(read_only=True)

    class DrfNested(drf.Serializer):
        id = drf.IntegerField(read_only=True)
        sku = drf.UUIDField(read_only=True)
        name = drf.CharField(read_only=True)
        price = drf.DecimalField(max_digits=10, decimal_places=2, read_only=True)
        active = drf.BooleanField(read_only=True)
        created = drf.DateTimeField(read_only=True)
        rating = drf.IntegerField(read_only=True)
        body = drf.CharField(read_only=True)
        owner = DrfOwner(read_only=True)
        children = DrfChild(many=True, read_only=True)

    class DrfFlat(drf.Serializer):
        locals().update({name: drf.ReadOnlyField() for name in FLAT})

    class MOwner(drf.ModelSerializer):
        class Meta:
            model = User
            fields = ["id", "username", "email"]

    class MChild(drf.ModelSerializer):
        score = drf.IntegerField(read_only=True)

        class Meta:
            model = Tag
            fields = ["id", "name", "score"]

    class MNested(drf.ModelSerializer):
        rating = drf.IntegerField(read_only=True)
        body = drf.CharField(read_only=True)
        owner = MOwner(read_only=True)
        children = MChild(many=True, read_only=True)

        class Meta:
            model = Product
            fields = ["id", "sku", "name", "price", "active", "created", "rating", "body",
                      "owner", "children"]  # fmt: skip

    class MFlat(drf.ModelSerializer):
        score = drf.IntegerField(read_only=True)

        class Meta:
            model = User
            fields = FLAT

    nested["DRF Serializer"] = lambda objs: DrfNested(objs, many=True).data
    nested["DRF ModelSerializer"] = lambda objs: MNested(objs, many=True).data
    flat["DRF Serializer"] = lambda objs: DrfFlat(objs, many=True).data
    flat["DRF ModelSerializer"] = lambda objs: MFlat(objs, many=True).data

    # marshmallow ------------------------------------------------------------
    ma = marshmallow.fields

    class MaOwner(marshmallow.Schema):
        id = ma.Integer()
        username = ma.String()
        email = ma.String()

    class MaChild(marshmallow.Schema):
        id = ma.Integer()
        name = ma.String()
        score = ma.Integer()

    class MaNested(marshmallow.Schema):
        id = ma.Integer()
        sku = ma.UUID()
        name = ma.String()
        price = ma.Decimal(as_string=True)
        active = ma.Boolean()
        created = ma.Function(lambda o: iso(o.created))
        rating = ma.Integer()
        body = ma.String()
        owner = ma.Nested(MaOwner)
        children = ma.Nested(MaChild, many=True)

    MaFlat = marshmallow.Schema.from_dict({name: ma.Raw() for name in FLAT})
    ma_nested, ma_flat = MaNested(many=True), MaFlat(many=True)
    nested["marshmallow"] = ma_nested.dump
    flat["marshmallow"] = ma_flat.dump

    # pydantic v2 ----------------------------------------------------------------
    cfg = pydantic.ConfigDict(from_attributes=True)

    class PyOwner(pydantic.BaseModel):
        model_config = cfg
        id: int
        username: str
        email: str

    class PyChild(pydantic.BaseModel):
        model_config = cfg
        id: int
        name: str
        score: int

    class PyNested(pydantic.BaseModel):
        model_config = cfg
        id: int
        sku: uuid.UUID
        name: str
        price: decimal.Decimal
        active: bool
        created: datetime.datetime
        rating: int
        body: str
        owner: PyOwner
        children: list[PyChild]

    PyFlat = pydantic.create_model("PyFlat", __config__=cfg, **{n: (object, ...) for n in FLAT})
    py_nested = pydantic.TypeAdapter(list[PyNested])
    py_flat = pydantic.TypeAdapter(list[PyFlat])

    def py_dump(adapter, objs):
        data = adapter.dump_python(adapter.validate_python(objs, from_attributes=True), mode="json")
        return data

    nested["pydantic v2"] = lambda objs: py_dump(py_nested, objs)
    flat["pydantic v2"] = lambda objs: py_dump(py_flat, objs)

    # msgspec: convert from attributes, then to builtins ------------------------
    class MsOwner(msgspec.Struct):
        id: int
        username: str
        email: str

    class MsChild(msgspec.Struct):
        id: int
        name: str
        score: int

    class MsNested(msgspec.Struct):
        id: int
        sku: uuid.UUID
        name: str
        price: decimal.Decimal
        active: bool
        created: datetime.datetime
        rating: int
        body: str
        owner: MsOwner
        children: list[MsChild]

    MsFlat = msgspec.defstruct("MsFlat", [(n, object) for n in FLAT])

    def ms_dump(kind, objs):
        return msgspec.to_builtins(msgspec.convert(objs, list[kind], from_attributes=True))

    nested["msgspec"] = lambda objs: ms_dump(MsNested, objs)
    flat["msgspec"] = lambda objs: ms_dump(MsFlat, objs)

    singles = {
        "ours": lambda o: SkNested(o).data,
        "serpy 0.3.1": lambda o: serpy_classes(serpy)[0](o).data,
        "DRF Serializer": lambda o: DrfNested(o).data,
        "DRF ModelSerializer": lambda o: MNested(o).data,
    }
    serpy_single = serpy_classes(serpy)[0]
    singles["serpy 0.3.1"] = lambda o: serpy_single(o).data
    return nested, flat, singles


def normalize(data):
    import json

    return json.loads(json.dumps(data, default=str).replace("+00:00", "Z"))


def run_gc_on(hand, candidates, objs):
    """The same nested run with the garbage collector on: allocation-heavy code pays more."""
    keep = ("ours", "serpy 0.3.1", "pydantic v2", "DRF ModelSerializer")
    fns = {"hand-written": lambda: hand(objs)}
    fns.update({name: (lambda f=candidates[name]: f(objs)) for name in keep})
    times = interleaved(fns, rounds=max(3, ROUNDS // 2), gc_off=False)
    print(f"\n## Nested, garbage collector on ({max(3, ROUNDS // 2)} rounds)")
    print(per_object_table(times, len(objs), "hand-written"))


def run_shape(title, hand, candidates, objs):
    expected = normalize(hand(objs[:50]))
    mismatched = []
    for name, fn in candidates.items():
        got = normalize(fn(objs[:50]))
        if got != expected:
            mismatched.append(name)
    fns = {"hand-written": lambda: hand(objs)}
    fns.update({name: (lambda f=fn: f(objs)) for name, fn in candidates.items()})
    times = interleaved(fns, rounds=ROUNDS)
    print(f"\n## {title}: {len(objs):,} objects, µs per object (min and median of {ROUNDS} rounds)")
    print(per_object_table(times, len(objs), "hand-written", mismatched))
    return times


def per_object_table(times, n, baseline, mismatched=()):
    base_min = min(times[baseline])
    ours_min = min(times["ours"])
    lines = ["| | min µs | median µs | x hand-written | ours faster by |", "|---|---|---|---|---|"]
    for name, samples in times.items():
        best, med = min(samples) / n * 1e6, statistics.median(samples) / n * 1e6
        flag = " (output differs)" if name in mismatched else ""
        lines.append(
            f"| {name}{flag} | {best:.2f} | {med:.2f} | {min(samples) / base_min:.2f} | "
            f"{min(samples) / ours_min:.2f}x |"
        )
    return "\n".join(lines)


def run_single(singles, obj):
    loops = 500
    fns = {name: (lambda f=fn: [f(obj) for _ in range(loops)]) for name, fn in singles.items()}
    times = interleaved(fns, rounds=ROUNDS)
    print(f"\n## Single object `.data` (nested shape), µs per call ({loops} calls per round)")
    ours_min = min(times["ours"])
    print("| | min µs | median µs | ours faster by |\n|---|---|---|---|")
    for name, samples in times.items():
        print(
            f"| {name} | {min(samples) / loops * 1e6:.2f} | "
            f"{statistics.median(samples) / loops * 1e6:.2f} | {min(samples) / ours_min:.1f}x |"
        )


def end_to_end():
    from django.db import connection
    from django.test import Client, override_settings

    from tests.testapp.models import Product, Review, Tag, User

    Review.objects.all().delete()
    users = [User.objects.get_or_create(username=f"bench{i}")[0] for i in range(10)]
    tags = [Tag.objects.get_or_create(name=f"bench{i}")[0] for i in range(5)]
    products = []
    for i in range(20):
        p = Product.objects.create(name=f"bench {i}", price=decimal.Decimal(i))
        p.tags.set(tags[: i % 5 + 1])
        products.append(p)
    Review.objects.bulk_create(
        Review(product=products[i % 20], user=users[i % 10], rating=i % 5 + 1, body="b" * 200)
        for i in range(100)
    )
    client = Client()
    rows = {}
    with override_settings(ROOT_URLCONF="tests.urls_serializers", ALLOWED_HOSTS=["testserver"]):
        assert client.get("/reviews/ours/").json() == client.get("/reviews/drf/").json()
        for url, label in (
            ("/reviews/drf/", "DRF ModelSerializer, plain queryset"),
            ("/reviews/drf-prefetched/", "DRF ModelSerializer, hand-tuned select/prefetch"),
            ("/reviews/ours/", "ours + OptimizeMixin (derived select/prefetch/only)"),
        ):
            seen: list[str] = []

            def spy(execute, sql, params, many, context, seen=seen):
                seen.append(sql)
                return execute(sql, params, many, context)

            with connection.execute_wrapper(spy):
                client.get(url)
            samples = []
            for _ in range(ROUNDS):
                start = time.perf_counter()
                client.get(url)
                samples.append(time.perf_counter() - start)
            rows[label] = (len(seen), samples)
    print("\n## End to end: GET a list of 100 reviews with user, product and tags (test client)")
    print("| | queries | min ms | median ms |\n|---|---|---|---|")
    for label, (queries, samples) in rows.items():
        print(f"| {label} | {queries} | {min(samples) * 1e3:.1f} | "
              f"{statistics.median(samples) * 1e3:.1f} |")  # fmt: skip


def main() -> None:
    setup()
    print(f"CPython {sys.version.split()[0]}, {'QUICK, ' if QUICK else ''}{ROUNDS} rounds")
    nested, flat, singles = build_candidates()
    objs = make_nested(N)
    run_shape("Nested", hand_nested, nested, objs)
    run_gc_on(hand_nested, nested, objs)
    run_shape("Flat", hand_flat, flat, make_flat(N))
    run_single(singles, objs[0])
    end_to_end()
    _ = table  # the shared helper; this script prints per-object tables instead


if __name__ == "__main__":
    main()
