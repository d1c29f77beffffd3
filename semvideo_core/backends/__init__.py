"""Pretrained parts behind one interface each, loaded from local paths (see design.md section 4)."""
