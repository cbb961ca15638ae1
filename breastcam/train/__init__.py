"""breastcam.train"""
