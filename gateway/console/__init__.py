"""The web console served at /console: page shell, static assets, cookie sessions bridged to the API."""
