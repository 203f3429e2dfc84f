"""satwatch: streaming detector for geostationary weather-satellite imagery."""

__version__ = "0.1.0"
