"""Settings, read from `SEAMLINE_*` environment variables and an optional `.env` file.

Every setting is documented in docs/configuration.md; keep the two in step.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Identifier types every installation knows. More can be added with
#: `SEAMLINE_EXTRA_IDENTIFIER_TYPES`; each type's kind decides how values are normalized.
BUILTIN_IDENTIFIER_TYPES: dict[str, str] = {
    "user_id": "text",
    "anonymous_id": "text",
    "email": "email",
    "phone": "phone",
    "loyalty_card": "text",
    "device_id": "text",
    "telegram_id": "text",
    "whatsapp": "phone",
    "vk_id": "text",
    "viber_id": "text",
}

#: Segment Unify's defaults: values that never identify a person.
DEFAULT_BLOCKED_VALUES = [
    r"^[0-]*$",
    r"^-1$",
    r"^(?i:null|none|nil|undefined|anonymous|unknown|test@test\.com)$",
]


#: Requests per minute per client IP and per key for each group of public endpoints
#: (`core/limits.py`); generous enough for a busy site and for the test suite.
DEFAULT_RATE_LIMITS: dict[str, dict[str, int]] = {
    "collection": {"ip": 6000, "key": 60000},
    "webchat": {"ip": 600, "key": 30000},
    "callback": {"ip": 60, "key": 600},
    "login_codes": {"ip": 1200, "key": 1200},
    "analytics": {"ip": 120, "key": 120},
    "segments": {"ip": 120, "key": 120},
    "tracking": {"ip": 600, "key": 0},
    "push": {"ip": 6000, "key": 60000},
    "shop_push": {"ip": 60, "key": 0},
}


class RateLimit(BaseModel):
    """One group's budget, in requests per minute; 0: no limit."""

    ip: int = Field(ge=0)
    key: int = Field(ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SEAMLINE_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///seamline.db",
        description="SQLAlchemy URL. sqlite:///path (embedded default) or postgresql+psycopg://...",
    )
    database_pool_size: int = Field(default=10, ge=1, le=200)
    sqlite_busy_timeout_ms: int = Field(default=10_000, ge=0)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"
    log_json: bool | None = Field(
        default=None,
        description="Logs as JSON lines (true) or short readable lines (false); unset: JSON unless stdout is a terminal "
        "or this is the demo",
    )

    default_region: str = Field(default="RU", description="Region for phone numbers without +country code")
    extra_identifier_types: dict[str, str] = Field(
        default_factory=dict,
        description='JSON object of extra identifier types and their kind (text, email, phone), e.g. {"max_id": "text"}',
    )
    identifier_priority: list[str] = Field(
        default_factory=lambda: [
            "user_id",
            "email",
            "phone",
            "loyalty_card",
            "telegram_id",
            "whatsapp",
            "vk_id",
            "viber_id",
            "device_id",
            "anonymous_id",
        ],
        description="Order in which a request's identifiers are applied; the first known one anchors the request",
    )
    identifier_limits: dict[str, int] = Field(
        default_factory=lambda: {"user_id": 1},
        description="Maximum identifiers of a type per profile; types not listed use identifier_default_limit",
    )
    identifier_default_limit: int = Field(default=5, ge=1)
    blocked_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_BLOCKED_VALUES),
        description="Regular expressions; a matching identifier value never links anyone",
    )
    privileged_traits: list[str] = Field(
        default_factory=lambda: ["vip", "tier", "loyalty_tier", "price_list", "discount_percent", "credit_limit",
                                 "staff", "blocked", "verified"],
        description="Traits only a trusted source (a server key, staff) may set; a browser's value is dropped",
    )
    blocked_extra_values: list[str] = Field(
        default_factory=list,
        description="Exact values (after normalization) that never link anyone, e.g. a store's shared phone",
    )

    consent_channels: list[str] = Field(
        default_factory=lambda: ["email", "sms", "push", "phone_call", "telegram", "whatsapp", "vk", "viber", "web_push"],
        description="Channels a consent can be given for",
    )
    consent_purposes: list[str] = Field(
        default_factory=lambda: ["service", "marketing", "personal_data"],
        description="Purposes a consent can be given for (personal_data: processing under 152-FZ)",
    )

    customers_import_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=1024,
        description="Largest customer import file accepted over HTTP, held in memory while it runs (docs/import.md; the command has no limit)"
    )
    customers_import_workers: int = Field(
        default=0, ge=0, le=64,
        description="Processes that normalize a large import file's identifiers; 0: one per CPU (docs/import.md)",
    )

    event_max_bytes: int = Field(default=32 * 1024, ge=1024, description="Largest accepted event (its JSON), as Segment's 32 KB")
    event_batch_max_bytes: int = Field(
        default=500 * 1024, ge=1024, description="Largest accepted request body after gzip, as Segment's 500 KB per batch"
    )
    http_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024,
        description="Largest request body of any route but those with their own limit (collection, attachments, email, "
        "stock files, provider webhooks); larger: 413",
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=lambda: {name: RateLimit(**limit) for name, limit in DEFAULT_RATE_LIMITS.items()},
        description="Requests per minute per client IP (`ip`) and per key (`key`) of each group of public endpoints, JSON, "
        'e.g. {"collection": {"ip": 600}}; groups and fields not given keep their defaults; 0: no limit',
    )
    delivery_max_attempts: int = Field(default=12, ge=1, description="Webhook delivery attempts before a batch goes to the dead-letter list")
    delivery_backoff_seconds: float = Field(default=2.0, gt=0, description="First retry delay; doubles each attempt (with jitter), capped at 1 hour")
    delivery_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one webhook request")
    serve_worker: bool | None = Field(
        default=None,
        description="Run a job worker inside `seamline serve`. Unset: yes on SQLite (the embedded default) and in the demo, "
        "no on PostgreSQL, where `seamline worker` processes run the jobs",
    )
    worker_concurrency: int = Field(default=2, ge=1, le=64, description="Jobs one worker runs at once per queue, unless `seamline worker --queue NAME=N` says otherwise")
    worker_poll_seconds: float = Field(default=0.5, gt=0, le=60, description="How often an idle worker looks for due jobs; a new job wakes workers at once (PostgreSQL: all, by NOTIFY; SQLite: this process's)")
    job_lease_seconds: float = Field(
        default=60.0, ge=2, le=3600,
        description="How long a job stays a worker's without its heartbeat; a job of a worker that died runs again after this",
    )
    secret_key: SecretStr = Field(
        default=SecretStr(""),
        description="Key (at least 32 characters) that encrypts the secrets kept in the database (webhook signing secrets, "
                    "core/crypto.py). Unset: a key file beside a SQLite database, created at first use; PostgreSQL needs it",
    )
    secret_key_fallbacks: list[SecretStr] = Field(
        default_factory=list, description="Earlier values of secret_key, JSON list: decryption only, while rotating"
    )
    event_retention_days: dict[str, int] = Field(
        default_factory=dict,
        description='Days to keep raw events per type, JSON, e.g. {"page": 90, "track": 730}; "*" for every other type. '
        "Types not named (and no \"*\") are kept forever. Applied by `seamline events prune`.",
    )

    commerce_currency: str = Field(default="RUB", pattern=r"^[A-Z]{3}$", description="Currency of the price list (ISO 4217)")
    commerce_price_override_channels: list[str] = Field(
        default_factory=list,
        description="Channels that may have their own price for a SKU; every other channel sells at the one list price",
    )
    commerce_reservation_minutes: int = Field(
        default=30, ge=1, description="How long an order waiting for payment holds its stock before it is cancelled"
    )
    commerce_pickup_hold_hours: int = Field(
        default=72, ge=1, description="How long a click & collect order ready in the store waits before it is cancelled"
    )
    commerce_payment_methods: list[str] = Field(
        default_factory=lambda: ["on_pickup", "test"],
        description="Payment providers an order may choose (on_pickup, test, webhook, or a registered adapter); "
        "leave `test` out in production",
    )
    commerce_psp_url: str = Field(default="", description="Base URL of the webhook provider's API (payments and refunds)")
    commerce_psp_account: str = Field(default="", description="Account (shop id) for the webhook provider's API, HTTP basic user")
    commerce_psp_api_key: SecretStr = Field(default=SecretStr(""), description="Secret key for the webhook provider's API")
    commerce_psp_webhook_secret: SecretStr = Field(
        default=SecretStr(""), description="HMAC-SHA256 secret of the provider's webhook signatures; empty refuses every webhook"
    )
    commerce_psp_webhook_tolerance_seconds: int = Field(
        default=300, ge=1, description="Oldest (or furthest in the future) signed timestamp a webhook may carry"
    )
    commerce_psp_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one request to the provider")
    commerce_psp_return_url: str = Field(default="", description="Where the provider sends the customer after paying")
    commerce_sync_dir: str | None = Field(
        default=None,
        description="Folder the accounting system drops stock and price files into (CSV, CommerceML offers.xml); "
        "`seamline serve` imports them every commerce_sync_interval_seconds. Unset: off",
    )
    commerce_sync_interval_seconds: float = Field(default=300.0, gt=0, description="How often the sync folder is read")
    commerce_expire_interval_seconds: float = Field(
        default=60.0, ge=0, description="How often the job queue cancels orders whose hold ran out; 0: off (use cron)"
    )
    commerce_refund_retry_seconds: float = Field(
        default=300.0, ge=0, description="How often the job queue resends refunds a provider could not take; 0: off"
    )
    loyalty_job_interval_seconds: float = Field(
        default=300.0, ge=0,
        description="How often the job queue releases held points, expires old ones, gives birthday bonuses and "
        "re-evaluates tiers; 0: off (use cron: `seamline loyalty run-jobs`)",
    )
    inbox_realtime_backend: Literal["auto", "local", "postgres"] = Field(
        default="auto",
        description="How real-time inbox updates reach WebSockets: postgres (LISTEN/NOTIFY, shared by every server process), "
        "local (this process only), auto (postgres on PostgreSQL, else local)",
    )
    inbox_priority_seconds: int = Field(
        default=60, ge=0, description="Waiting time one priority point is worth in the inbox queue (priority 10: served as if 10 minutes earlier)"
    )
    inbox_tier_priority: dict[str, int] = Field(
        default_factory=dict, description='Queue priority by loyalty tier code, JSON, e.g. {"gold": 10, "platinum": 20}'
    )
    inbox_vip_priority: int = Field(default=20, description="Queue priority of customers whose `vip` trait is true")
    inbox_channel_weights: dict[str, int] = Field(
        default_factory=dict,
        description='Load a conversation of a channel puts on an agent, JSON, e.g. {"phone": 100} (capped at the agent\'s capacity: '
        "a call takes it all); channels not named use their adapter's weight (1)",
    )
    inbox_reopen_hours: float = Field(
        default=24.0, ge=0, description="A customer message within this time after resolution reopens the conversation; later ones start a new one"
    )
    inbox_inbound_batch: int = Field(
        default=100, ge=1, le=5000,
        description="Provider messages of a lane taken in one batch after their webhooks were answered: those continuing an assigned "
        "conversation go in together; the rest one by one (on PostgreSQL, one transaction each)",
    )
    inbox_inbound_lanes: int = Field(
        default=4, ge=1, le=256,
        description="Lanes of provider messages by sender: a lane is processed in order, one batch at a time; lanes run side by side on the workers",
    )
    inbox_attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="Largest file a customer or agent may attach")
    inbox_survey: Literal["csat", "nps", "none"] = Field(default="csat", description="Question sent on the same channel after resolution")
    inbox_language: Literal["ru", "en"] = Field(default="ru", description="Language of the inbox's own messages to customers (survey questions, the default subject of email replies)")
    inbox_sla_at_risk_minutes: int = Field(default=15, ge=0, description="An SLA clock due within this time is shown as at risk")
    inbox_job_interval_seconds: float = Field(
        default=10.0, ge=0, description="How often the job queue flags SLA breaches, wakes snoozed conversations and retries failed inbound; 0: off"
    )
    inbox_webchat_identity_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Secret the site's backend signs user ids with for the web chat (userHash = hex HMAC-SHA256 of the user id); "
        "a session with a valid hash sees the customer's whole history, one without only its own browser's chats",
    )
    inbox_webchat_session_days: int = Field(default=30, ge=1, description="Web chat sessions are removed by the inbox job this long after they opened (the widget then opens a new one)")
    inbox_rate_limits: dict[str, float] = Field(
        default_factory=lambda: {"telegram": 30, "whatsapp": 80, "vk": 20, "viber": 20, "sms": 10, "email": 5,
                                 "webpush": 100, "mobilepush": 500},
        description="Messages per second each channel may send, all server processes together (the providers' limits: "
        "Telegram about 30/s per bot, WhatsApp Cloud API 80/s per number, VK 20 requests/s per community token); "
        "JSON; channels not named: 10/s",
    )
    inbox_outage_pause_max_seconds: float = Field(
        default=300.0, gt=0, description="Longest pause of a channel after temporary failures in a row (the pause doubles from delivery_backoff_seconds); queued messages wait without spending attempts"
    )
    inbox_outbound_channels: list[str] = Field(
        default_factory=lambda: ["telegram", "whatsapp", "viber", "vk", "sms", "email"],
        description="Order in which `POST /v1/inbox/outbound` tries channels when none is given and the customer has not written on any it can use",
    )
    inbox_telephony_secret: SecretStr = Field(
        default=SecretStr(""),
        description="Shared secret of the PBX's call webhooks (X-Seamline-Signature: sha256=<HMAC-SHA256 of the raw body>); empty: the webhook refuses everything",
    )
    analytics_backend: Literal["duckdb", "postgres", "spark"] = Field(
        default="duckdb",
        description="Where analytics run: duckdb (a mirror file kept fresh by a job; the embedded default), postgres "
        "(the operational PostgreSQL database itself, through views; no mirror) or spark (PySpark over the mirror's Parquet copy)",
    )
    analytics_mirror_path: str = Field(
        default="", description="The DuckDB mirror file; empty: beside the SQLite database (<name>.analytics.duckdb), "
        "else ./seamline-analytics.duckdb"
    )
    analytics_parquet_dir: str = Field(
        default="seamline-analytics-parquet", description="Where `seamline analytics sync --parquet` writes the tables Spark reads"
    )
    analytics_sync_seconds: float = Field(
        default=60.0, ge=0, description="How often the job queue copies new rows into the DuckDB mirror (duckdb backend); 0: off"
    )
    marketing_segment_refresh_seconds: float = Field(
        default=600.0, ge=0,
        description="How often every segment is evaluated again over everyone (people also move in and out incrementally, "
        "at once, when something happens to them; this catches what time alone changes, e.g. a 30-day window); 0: off",
    )
    marketing_advance_seconds: float = Field(
        default=1.0, ge=0, description="How often the job queue moves people whose journey wait has ended (events that "
        "move people run their steps at once); 0: off")
    marketing_public_url: str = Field(
        default="http://127.0.0.1:8000", pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="Where links in marketing messages point (the shop's cart, tracked links, unsubscribe): this server's public address",
    )
    marketing_locale: Literal["ru", "en"] = Field(
        default="ru", description="The language of a marketing message when the person's locale trait does not say")
    marketing_timezone: str = Field(
        default="Europe/Moscow", description="A person's time zone when their timezone trait does not say (waits until a time of day, quiet hours)")
    marketing_quiet_hours: str = Field(
        default="21:00-09:00", pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9])?$",
        description="Local hours (HH:MM-HH:MM) when marketing messages are held until the end, not sent; empty: none",
    )
    marketing_cap_messages: int = Field(
        default=4, ge=0, le=1000, description="At most this many marketing messages per person per marketing_cap_days, all "
        "journeys and campaigns together (transactional messages do not count); 0: no cap")
    marketing_cap_days: int = Field(default=7, ge=1, le=365, description="The window of marketing_cap_messages, in days")
    marketing_channel_half_life_days: float = Field(
        default=120.0, gt=0, le=3650, description="Next best channel: how fast what a person did with messages fades "
        "(evidence this old counts half; docs/marketing.md, \"Next best channel\")")
    marketing_channel_prior_strength: float = Field(
        default=4.0, gt=0, le=1000, description="Next best channel: how many messages' worth the experience of people like "
        "them (their cohort) counts for a person's own")
    marketing_optichannel_seconds: float = Field(
        default=300.0, ge=0, description="How often the job queue credits replies to marketing messages and, every twelfth "
        "time, sums each cohort's evidence again; 0: off")
    recommendations_enabled: bool = Field(
        default=True, description="Train and serve product recommendations (docs/recommendations.md); off: the lists are empty "
        "and the retrain task is not scheduled")
    recommendations_retrain_minutes: float = Field(
        default=360.0, ge=0, description="How often the job queue trains the recommendation model again; 0: only by hand "
        "(`seamline recommendations train`, POST /v1/recommendations/train)")
    recommendations_lookback_days: int = Field(
        default=365, ge=1, le=3650, description="Orders, cart lines and product views of this many days train the model")
    recommendations_popular_days: int = Field(
        default=30, ge=1, le=3650, description="Popular lists count purchases of this many days (all of the lookback when none)")
    recommendations_recent_days: int = Field(
        default=90, ge=0, le=3650, description="A product the person bought within this many days is not recommended to "
        "them again unless it is consumable; 0: never excluded")
    recommendations_consumable_repeat_rate: float = Field(
        default=0.3, ge=0, le=1, description="A product counts as consumable (recommended again after a purchase) when its "
        "attribute `consumable` is true or at least this share of its buyers bought it in two or more orders")
    recommendations_min_support: int = Field(
        default=2, ge=1, le=1000, description="Orders that must hold both products before they are 'bought together'")
    recommendations_top_n: int = Field(
        default=50, ge=10, le=200, description="Precomputed items kept per person and per product (serving filters stock "
        "and past purchases out of them)")
    recommendations_factors: int = Field(default=32, ge=2, le=1024, description="ALS latent factors")
    recommendations_regularization: float = Field(default=0.1, ge=0, description="ALS L2 regularization")
    recommendations_iterations: int = Field(default=15, ge=1, le=200, description="ALS iterations")
    recommendations_alpha: float = Field(
        default=10.0, gt=0, description="ALS confidence scale: confidence = 1 + alpha * log1p(weight), where a purchase "
        "weighs 4, a cart line 2 and a product view 1")
    recommendations_threads: int = Field(default=1, ge=1, le=64, description="Threads ALS trains with")
    assistant_enabled: bool = Field(
        default=False, description="The chat bot answers new conversations on `assistant_channels` first and hands over to "
        "people (docs/assistant.md); the demo turns it on")
    assistant_channels: list[str] = Field(
        default=["webchat", "telegram", "whatsapp", "vk", "viber", "sms"],
        description="Channels whose new conversations the bot takes")
    assistant_confidence: float = Field(
        default=0.4, ge=0, le=1, description="The intent model's confidence at which the bot answers")
    assistant_unsure_confidence: float = Field(
        default=0.25, ge=0, le=1, description="Below `assistant_confidence` and at or above this, the bot is unsure: it hands "
        "over (`low_confidence`); below this it says it did not understand (twice: it hands over)")
    assistant_idle_minutes: int = Field(
        default=30, ge=1, le=7 * 24 * 60,
        description="A conversation only the bot answered is resolved (by the bot) after this long without a customer message")
    assistant_hold_extension_hours: int = Field(
        default=48, ge=1, le=24 * 14, description="How much longer a pickup order waits when the bot extends its hold (once)")
    assistant_llm_url: str | None = Field(
        default=None, description="An OpenAI-compatible endpoint (`.../v1`) the bot asks which intent a message has when its "
        "own model is unsure; off when empty (docs/assistant.md)")
    assistant_llm_model: str = Field(default="gpt-4o-mini", description="The model name sent to `assistant_llm_url`")
    assistant_llm_api_key: SecretStr = Field(default=SecretStr(""), description="Bearer token for `assistant_llm_url`")
    assistant_llm_timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="How long to wait for the LLM")
    console_session_hours: int = Field(default=12, ge=1, le=24 * 30, description="How long a staff console sign-in lasts")
    console_login_free_attempts: int = Field(
        default=5, ge=1, le=100,
        description="Failed console sign-ins for one email from one address before each further attempt from there waits "
                    "(10 s, doubling; docs/console.md). Never locks the account for other addresses",
    )
    console_login_ip_free_attempts: int = Field(
        default=20, ge=1, le=10_000,
        description="Failed console sign-ins from one address, whatever the email, before each further attempt from there waits",
    )
    console_login_max_delay_minutes: int = Field(
        default=15, ge=1, le=24 * 60, description="Longest wait the console's sign-in throttling imposes on an address"
    )
    console_timezone: str = Field(default="Europe/Moscow", description="Time zone the console shows dates and times in")
    inbox_callback_max_per_phone_per_day: int = Field(
        default=3, ge=1, description="Website \"call me back\" requests accepted per phone number per day (a public form: a cap on abuse)"
    )
    inbox_telegram_bot_token: SecretStr = Field(default=SecretStr(""), description="The bot's token from @BotFather; empty: Telegram replies fail")
    inbox_telegram_webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The secret_token given to setWebhook; Telegram sends it in X-Telegram-Bot-Api-Secret-Token. Empty refuses every update",
    )
    inbox_telegram_api_base: str = Field(default="https://api.telegram.org", description="Bot API base URL (a local Bot API server)")
    inbox_whatsapp_app_secret: SecretStr = Field(
        default=SecretStr(""), description="The Meta app secret: webhooks are signed with it (X-Hub-Signature-256). Empty refuses every webhook"
    )
    inbox_whatsapp_verify_token: SecretStr = Field(default=SecretStr(""), description="The token Meta's subscription check must present")
    inbox_whatsapp_access_token: SecretStr = Field(default=SecretStr(""), description="A system user's access token for sending")
    inbox_whatsapp_phone_number_id: str = Field(default="", description="The business phone number's id in the Cloud API")
    inbox_whatsapp_api_base: str = Field(default="https://graph.facebook.com/v21.0", description="Graph API base URL with its version")
    inbox_sms_provider: Literal["", "smsru", "smsc", "twilio", "generic"] = Field(
        default="",
        description="SMS gateway preset: smsru (SMS.ru), smsc (SMSC.ru), twilio (Twilio Programmable Messaging) or generic "
        "(JSON over HTTP, docs/inbox.md); empty: SMS off (replies are retried and fail, callbacks are refused)",
    )
    inbox_sms_api_url: str = Field(
        default="",
        description="The gateway's API base URL; empty: the preset's (https://sms.ru, https://smsc.ru, https://api.twilio.com). "
        "generic: the URL replies are POSTed to",
    )
    inbox_sms_login: str = Field(default="", description="SMSC: the login (empty: inbox_sms_api_key is an SMSC API key); Twilio: the Account SID")
    inbox_sms_api_key: SecretStr = Field(
        default=SecretStr(""),
        description="SMS.ru: the api_id; SMSC: the password or API key; Twilio: the Auth Token (it also checks Twilio's signatures); "
        "generic: the bearer token of sends",
    )
    inbox_sms_sender: str = Field(
        default="",
        description="Who replies come from: an approved sender name or a number (Twilio: a number or a Messaging Service SID, MG...); "
        "empty: twilio and generic reply from the number the customer wrote to, smsru and smsc use the account's default sender",
    )
    inbox_sms_webhook_secret: SecretStr = Field(
        default=SecretStr(""),
        description="smsru, smsc: the `secret` query parameter of the callback URL; generic: the key of X-Seamline-Signature "
        "(t=<unix time>,v1=<HMAC-SHA256 of \"<t>.<body>\">). Empty refuses their callbacks (Twilio's are checked with the Auth Token)",
    )
    inbox_sms_public_url: str = Field(
        default="",
        description="This server's public base URL as the gateway calls it (https://crm.example.com): Twilio signs the full URL, "
        "and replies ask Twilio for statuses there; empty: the request's own URL, and no StatusCallback",
    )
    inbox_sms_max_parts: int = Field(
        default=8, ge=1, le=255, description="A reply longer than this many SMS fails instead of being sent (SMS.ru's own limit is 8)"
    )
    inbox_vk_secret: SecretStr = Field(
        default=SecretStr(""),
        description="The secret key of the community's Callback API server; VK sends it in every event's `secret`. Empty refuses every event",
    )
    inbox_vk_confirmation_code: str = Field(default="", description="The string the Callback API server's confirmation must return (community settings)")
    inbox_vk_group_id: str = Field(default="", description="The community's id; when set, events (and the confirmation) for another community are refused")
    inbox_vk_access_token: SecretStr = Field(default=SecretStr(""), description="A community access token with the messages permission, for sending")
    inbox_vk_api_base: str = Field(default="https://api.vk.com", description="VK API base URL (messages.send is {base}/method/messages.send)")
    inbox_viber_auth_token: SecretStr = Field(
        default=SecretStr(""),
        description="The bot's auth token: sends replies (X-Viber-Auth-Token) and checks callbacks' X-Viber-Content-Signature. Empty refuses every callback",
    )
    inbox_viber_sender_name: str = Field(default="Support", max_length=28, description="Sender name shown on replies (at most 28 characters)")
    inbox_viber_api_base: str = Field(default="https://chatapi.viber.com", description="Viber REST API base URL (send_message is {base}/pa/send_message)")
    inbox_webpush_vapid_private_key: SecretStr = Field(
        default=SecretStr(""),
        description="The VAPID key pair's private key (P-256) that signs every web push (RFC 8292): PEM, or the raw 32 bytes "
        "base64url-encoded; the browser subscribes with its public key (GET /v1/channels/webpush/vapid-public-key). "
        "Empty: web push off",
    )
    inbox_webpush_vapid_subject: str = Field(
        default="mailto:support@example.com", pattern=r"^(mailto:\S+@\S+|https://\S+)$",
        description="The VAPID `sub` claim: a mailto: or https: contact the push services can reach the sender at",
    )
    inbox_webpush_ttl_seconds: int = Field(
        default=86_400, ge=0, le=2_419_200,
        description="How long a push service keeps a notification for a browser that is offline (TTL header); 0: now or never",
    )
    inbox_webpush_endpoint_hosts: list[str] = Field(
        default_factory=lambda: ["fcm.googleapis.com", "android.googleapis.com", "updates.push.services.mozilla.com",
                                 "*.push.apple.com", "*.notify.windows.com"],
        description="Push services a subscription's endpoint may point at (the browsers' own: Chrome and Chromium-based, "
        "Firefox, Safari, Edge); HTTPS only, \"*.\" for subdomains, \"http://host\" to allow plain HTTP to a host (tests). "
        "Seamline POSTs to these URLs, so any other host is refused",
    )
    inbox_mobilepush_fcm_credentials_file: str = Field(
        default="", description="Path of the Firebase service account's JSON key file (FCM HTTP v1); empty: see inbox_mobilepush_fcm_credentials"
    )
    inbox_mobilepush_fcm_credentials: SecretStr = Field(
        default=SecretStr(""),
        description="The Firebase service account's JSON key itself (instead of a file). Neither set: mobile push off",
    )
    inbox_mobilepush_fcm_project_id: str = Field(
        default="", description="The Firebase project id; empty: the service account's project_id"
    )
    inbox_mobilepush_fcm_base_url: str = Field(
        default="https://fcm.googleapis.com", description="FCM API base URL (messages:send is {base}/v1/projects/{project}/messages:send)"
    )
    inbox_mobilepush_ttl_seconds: int = Field(
        default=86_400, ge=0, le=2_419_200, description="How long FCM and APNs keep a notification for a device that is offline"
    )
    inbox_push_urgency: Literal["very-low", "low", "normal", "high"] = Field(
        default="normal",
        description="Urgency of push notifications unless a message asks for another: web push's Urgency header (RFC 8030); "
        "high also makes FCM (priority high) and APNs (apns-priority 10) deliver at once",
    )
    inbox_push_default_title: str = Field(
        default="Seamline", max_length=100,
        description="Title of a push notification (web and mobile) whose message has no subject nor push title",
    )
    inbox_email_address: str = Field(default="", description="The support mailbox's address: From of replies, and where customers write")
    inbox_email_name: str = Field(default="Support", description="Display name of replies' From")
    inbox_email_max_bytes: int = Field(default=25 * 1024 * 1024, ge=1024, description="Largest email accepted over HTTP (POST /v1/channels/email/messages)")
    inbox_smtp_host: str = Field(default="", description="SMTP server for replies; empty: email replies are retried and fail after delivery_max_attempts")
    inbox_smtp_port: int = Field(default=587, ge=1, le=65535)
    inbox_smtp_username: str = Field(default="")
    inbox_smtp_password: SecretStr = Field(default=SecretStr(""))
    inbox_smtp_security: Literal["none", "starttls", "ssl"] = Field(default="starttls")
    inbox_imap_host: str = Field(default="", description="IMAP server polled for customers' email; empty: off")
    inbox_imap_port: int = Field(default=993, ge=1, le=65535)
    inbox_imap_username: str = Field(default="")
    inbox_imap_password: SecretStr = Field(default=SecretStr(""))
    inbox_imap_security: Literal["none", "starttls", "ssl"] = Field(default="ssl")
    inbox_imap_folder: str = Field(default="INBOX")
    inbox_imap_poll_seconds: float = Field(default=30.0, ge=0, description="How often the job queue polls the IMAP mailbox; 0: off")
    commerce_sync_price_type: str = Field(
        default="",
        description="The 1C price type (ИдТипаЦены or its name) that is the list price; empty: an offer's only price",
    )
    commerce_sync_default_location: str = Field(
        default="", description="Location code for quantities given without a warehouse (an offer's total, a CSV row without location)"
    )
    commerce_sync_max_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest stock file accepted (HTTP upload, folder, CLI)"
    )

    demo: bool = Field(
        default=False,
        description="Set by `seamline demo` (and kept in its <db>.demo.json): the page at / lists the demo's console "
        "logins, and logs are readable lines. Never in production",
    )
    login_codes_reveal: bool = Field(
        default=False,
        description="Demo only: the one-time login code is returned in the response of POST /v1/auth/login-codes "
        "so the demo storefront can show it on screen. Never in production",
    )
    storefront_api_key: str | None = Field(
        default=None,
        description="The demo storefront's server API key (write scope), held by the shop's backend; unset: /shop/ and "
        "/app/ answer 503 (storefront not configured)",
    )
    storefront_write_key: str | None = Field(
        default=None, description="The demo storefront's event source write key, given to seamline.js and the chat widget in the browser"
    )
    storefront_app_write_key: str | None = Field(
        default=None,
        description="The write key of the app look's event source (channel `app`), so /app/'s events are recorded as the "
        "app's; unset: the app look uses storefront_write_key (its events count as that source's channel)",
    )
    storefront_api_url: str | None = Field(
        default=None,
        description="Base URL of the Seamline API the storefront calls (e.g. https://crm.example.com); unset: this process, in-process",
    )
    storefront_products: list[str] = Field(
        default_factory=list,
        description="Product codes the storefront's catalog page shows, in order (JSON list)",
    )
    storefront_session_secret: str | None = Field(
        default=None, description="Key of the storefront's signed login cookie; unset: a random key per process (logins end on restart)"
    )

    @field_validator("rate_limits", mode="before")
    @classmethod
    def _merge_rate_limits(cls, value: object) -> object:
        """What is given overrides the defaults group by group and field by field."""
        if not isinstance(value, dict):
            return value
        unknown = set(value) - set(DEFAULT_RATE_LIMITS)
        if unknown:
            raise ValueError(f"unknown rate-limit groups {sorted(unknown)}; known: {sorted(DEFAULT_RATE_LIMITS)}")
        merged: dict[str, object] = {}
        for name, default in DEFAULT_RATE_LIMITS.items():
            given = value.get(name)
            if isinstance(given, RateLimit):
                given = given.model_dump()
            merged[name] = {**default, **given} if isinstance(given, dict) else (default if given is None else given)
        return merged

    @field_validator("secret_key", "secret_key_fallbacks")
    @classmethod
    def _long_enough(cls, value: SecretStr | list[SecretStr]) -> SecretStr | list[SecretStr]:
        for key in value if isinstance(value, list) else [value]:
            if key.get_secret_value() and len(key.get_secret_value()) < 32:
                raise ValueError("a secret key needs at least 32 characters (e.g. `openssl rand -base64 32`)")
        return value

    @field_validator("default_region")
    @classmethod
    def _upper_region(cls, value: str) -> str:
        return value.upper()

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def identifier_types(self) -> dict[str, str]:
        return {**BUILTIN_IDENTIFIER_TYPES, **self.extra_identifier_types}


@lru_cache
def get_settings() -> Settings:
    return Settings()
