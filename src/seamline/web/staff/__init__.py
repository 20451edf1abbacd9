"""Staff accounts of the console: people with a role, an argon2 password and browser sessions."""

from seamline.web.staff.service import ROLES, create_staff_user, find_staff_user

__all__ = ["ROLES", "create_staff_user", "find_staff_user"]
