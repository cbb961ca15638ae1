"""breastcam.augment"""
