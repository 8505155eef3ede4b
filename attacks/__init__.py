"""Adversarial example generation on TextAttack (the only package that imports textattack).

Planned in the attacks issue; nothing here yet.
"""
