"""Stream processing: pure rules and replay, the faust processor, what every process shares."""
