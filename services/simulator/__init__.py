"""The scene simulator (labelled events included) and its calibration against real imagery."""
