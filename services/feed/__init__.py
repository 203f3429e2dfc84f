"""The forecaster's feed: incidents built from alerts, their store, the route to Alertmanager, and the web page."""
