"""The ``heroku``  target."""
