"""Russian dates: a day and its month take the genitive, "6 декабря" (Django's `E`).

Django's Russian MONTH_DAY_FORMAT is "j F", which writes "6 Декабрь" in the admin's date
hierarchy (the audit log's dates above its list).
"""

MONTH_DAY_FORMAT = "j E"
