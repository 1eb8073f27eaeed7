"""The web service: the JSON API and the HTML web view."""
