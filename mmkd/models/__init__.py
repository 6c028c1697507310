from .adapters import *  # noqa: F401,F403
from .distillers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .netaug import *  # noqa: F401,F403
from .pairings import *  # noqa: F401,F403
from .sftn import *  # noqa: F401,F403
