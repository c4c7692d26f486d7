//! Docker's random container names (`adjective_surname`), skeleton.
