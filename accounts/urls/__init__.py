"""Routes of the accounts API: `auth` is mounted at `/api/auth/`, `user` at `/api/user/` (config.urls)."""
