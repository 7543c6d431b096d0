"""The scheduler names a grove-py backend serves: the one list admission, `grove validate` and the docs use.

Grove refuses a `podSpec.schedulerName` that no enabled backend serves (grove-api.md §1.2, OperatorConfiguration
`scheduler.profiles`). An empty or omitted name means the default profile. To serve another backend, add its
name here: the CEL rule (`grove.validation.celrules`), the offline checker and docs/api.md follow.
"""

from typing import Final

from grove.api.constants import DEFAULT_SCHEDULER_NAME

#: Every scheduler name a backend serves; "" and an omitted schedulerName mean DEFAULT_SCHEDULER_NAME.
SERVED_SCHEDULER_NAMES: Final[tuple[str, ...]] = (DEFAULT_SCHEDULER_NAME,)
