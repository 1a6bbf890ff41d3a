"""What the Twilio voice and SMS channels share: webhook signatures and the REST client."""
