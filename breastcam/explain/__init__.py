"""breastcam.explain"""
