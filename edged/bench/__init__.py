"""``edged bench`` and the pieces the scripts under bench/ share."""
