"""The demo storefront: a small shop a retailer would build on Seamline, in two looks — the
website under `/shop/` (channel `web`) and the mobile app under `/app/` (channel `app`, a
phone-sized layout with a bottom tab bar). It talks to Seamline only through the public HTTP API
(`client.py`), as a retailer's own backend would; see docs/storefront.md.

Pages (the same under `/shop` and `/app`): `/` catalog, `/p/{code}` product, `/cart`, `/login`,
`/checkout`, `/orders/{id}`, `/account`, `/logout`; the push service worker `/sw.js` and the
"Notify me" posts `/push/subscription`, `/push/device`; static files under `/shop-static/`.

Stable `data-test` attributes for browser tests:

| data-test | element |
|---|---|
| `product-card` | a product on the catalog page (with `data-code`) |
| `add-to-cart` | the product page's "Add to cart" button |
| `variant` | a variant radio on the product page (value = SKU) |
| `quantity` | the quantity input on the product page |
| `cart-count` | the number of items in the header / tab bar |
| `cart-line` | one line of the cart (with `data-sku`); inside it `line-quantity` and `line-update` |
| `cart-total` | the cart's total |
| `checkout` | the cart's "Checkout" link |
| `login-identifier` | phone or email input (login step 1) |
| `login-send` | "Send code" button |
| `demo-code` | the code shown on screen in the demo (`login_codes_reveal`) |
| `login-code` | code input (login step 2) |
| `login-verify` | "Log in" button |
| `fulfilment-click_collect`, `fulfilment-delivery`, `fulfilment-pickup_point` | fulfilment radios |
| `store-select` | the store of click & collect (options show the cart's availability there) |
| `pickup-point-select` | the pickup point |
| `address-city`, `address-street` | delivery address fields |
| `points` | loyalty points to spend; `points-max` shows the most allowed |
| `pay-card`, `pay-on-pickup` | payment radios (card = the `test` provider) |
| `place-order` | "Place order" button |
| `order-status` | the order's status text (with `data-status`) |
| `pickup-code` | the order's pickup code |
| `order-points` | points spent on the order |
| `pay-now` | "Pay" button of an order waiting for payment |
| `points-balance` | loyalty balance on the account page |
| `card-number` | loyalty card number on the account page |
| `account-order` | an order in the account's list (with `data-order-id`) |
| `logout` | the log-out button |
| `push-notify` | the "Notify me" card (`data-state` off or on); inside it `push-enable` (the button) and `push-status` |
| `recommendations` | a recommendation row (`data-list`: bought_together, similar, cart, home; `data-reason`); inside it `recommendations-title` and `rec-card` (with `data-code`, `data-reason`) |
| `error` | a readable error message on any page |
| `not-configured` | the page shown when the storefront has no keys |
"""
