"""What ModelShip keeps: profiles, deployment records, the journal, secrets, trust."""
