"""Portal runs: the runner, one run's session and login, HTTP, sessions, challenges."""
