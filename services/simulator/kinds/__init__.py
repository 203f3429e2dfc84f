"""One module per kind of simulated event; ``services.simulator.interface`` holds them by name."""
