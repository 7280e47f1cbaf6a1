"""The shop's two read endpoints, the pages the demo report measures."""

from django.urls import path

from shop import views

urlpatterns = [
    path("products/", views.ProductList.as_view(), name="product-list"),
    path("products/<uuid:sku>/", views.product_detail, name="product-detail"),
]
