"""Learners trained on logged datasets: behaviour cloning and masked fitted-Q iteration."""
