"""breastcam.stain"""
