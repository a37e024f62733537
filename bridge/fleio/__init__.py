"""fleio"""
