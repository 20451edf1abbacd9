"""Product recommendations: ALS and co-purchase models trained from orders, carts and product
views, precomputed into tables and served with stock and past purchases filtered at request time
(docs/recommendations.md). Above commerce, events and customers: it reads them; nothing below
imports it."""
