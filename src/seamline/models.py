"""Every table of every domain, imported in one place for Alembic and the test schema."""

from seamline.assistant import models as _assistant  # noqa: F401
from seamline.channels.mobilepush import models as _mobilepush  # noqa: F401
from seamline.channels.telephony import models as _telephony  # noqa: F401
from seamline.channels.webpush import models as _webpush  # noqa: F401
from seamline.commerce import models as _commerce  # noqa: F401
from seamline.core.auth import models as _auth  # noqa: F401
from seamline.core.queue import models as _queue  # noqa: F401
from seamline.core.db import Base
from seamline.customers import models as _customers  # noqa: F401
from seamline.events import models as _events  # noqa: F401
from seamline.inbox import models as _inbox  # noqa: F401
from seamline.loyalty import models as _loyalty  # noqa: F401
from seamline.marketing.campaigns import models as _campaigns  # noqa: F401
from seamline.marketing.journeys import models as _journeys  # noqa: F401
from seamline.marketing.messages import models as _messages  # noqa: F401
from seamline.marketing.optichannel import models as _optichannel  # noqa: F401
from seamline.marketing.segments import models as _segments  # noqa: F401
from seamline.recommendations import models as _recommendations  # noqa: F401
from seamline.web.staff import models as _staff  # noqa: F401

metadata = Base.metadata
