"""breastcam.report"""
