"""Views of the accounts API, by concern: `auth` (`/api/auth/...`) and `user` (`/api/user/...`)."""
