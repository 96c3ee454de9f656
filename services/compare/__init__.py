"""Comparing providers: a run's numbers, the fidelity score, votes and the leaderboard, exports."""
