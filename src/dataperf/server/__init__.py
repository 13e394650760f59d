"""The hosted platform: leaderboards and what serves them."""
