"""breastcam.evaluate"""
