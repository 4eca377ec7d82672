"""When portals run: time rules, the planner's pure decisions and the scheduler component."""
