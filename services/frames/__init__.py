"""Frames: the frame model, satellite profiles, the message codec, PNG reading, resampling, archives."""
